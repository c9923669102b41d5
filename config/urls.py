from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.views import api_not_found, healthz

api_v1 = [
    path("", include("core.api.urls")),
    path("", include("marketplace.api.urls")),
    path("", include("trust.api.urls")),
    path("", include("escrow.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/v1/", include(api_v1)),
    # Everything else under /api/ is a JSON 404 (never Django's HTML page).
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
    path("webhooks/stripe/", include("escrow.webhooks")),
    path("demo-agents/", include("web.demo_agents")),
    path("console/", include("web.console_urls")),
    path("", include("web.dispute_urls")),
    path("", include("web.urls")),
]
