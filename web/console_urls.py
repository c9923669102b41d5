from django.urls import path

from web import console_views as views

app_name = "console"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("disputes/<int:pk>/", views.dispute_case, name="dispute"),
    path("disputes/<int:pk>/rule/", views.dispute_rule, name="dispute-rule"),
    path("disputes/<int:pk>/reevaluate/", views.dispute_reevaluate, name="dispute-reevaluate"),
    path("held/<int:escrow_id>/", views.held_case, name="held"),
    path("held/<int:escrow_id>/rule/", views.held_rule, name="held-rule"),
    path("held/<int:escrow_id>/reevaluate/", views.held_reevaluate, name="held-reevaluate"),
    path("escalations/<int:event_id>/resolve/", views.escalation_resolve, name="escalation-resolve"),
]
