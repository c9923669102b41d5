from django.urls import path

from escrow.api import views

urlpatterns = [
    path("engagements/<int:pk>/fund/", views.EngagementFundApi.as_view(), name="engagement-fund"),
    path("engagements/<int:pk>/release/", views.EngagementReleaseApi.as_view(), name="engagement-release"),
    path("escrows/<int:pk>/", views.EscrowDetailApi.as_view(), name="escrow-detail"),
    path("payouts/onboarding/", views.PayoutOnboardingApi.as_view(), name="payout-onboarding"),
    path("payouts/", views.PayoutListApi.as_view(), name="payout-list"),
]
