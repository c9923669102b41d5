from django.urls import path

from escrow.api import views

urlpatterns = [
    path("engagements/<int:pk>/fund/", views.EngagementFundApi.as_view(), name="engagement-fund"),
    path("engagements/<int:pk>/release/", views.EngagementReleaseApi.as_view(), name="engagement-release"),
    path("engagements/<int:pk>/disputes/", views.EngagementDisputesApi.as_view(), name="engagement-disputes"),
    path("engagements/<int:pk>/evidence/", views.EngagementEvidenceApi.as_view(), name="engagement-evidence"),
    path("escrows/<int:pk>/", views.EscrowDetailApi.as_view(), name="escrow-detail"),
    path("escrows/<int:pk>/rule/", views.EscrowRuleApi.as_view(), name="escrow-rule"),
    path("disputes/", views.DisputeListApi.as_view(), name="dispute-list"),
    path("disputes/<int:pk>/", views.DisputeDetailApi.as_view(), name="dispute-detail"),
    path("disputes/<int:pk>/answer/", views.DisputeAnswerApi.as_view(), name="dispute-answer"),
    path("disputes/<int:pk>/withdraw/", views.DisputeWithdrawApi.as_view(), name="dispute-withdraw"),
    path("disputes/<int:pk>/rule/", views.DisputeRuleApi.as_view(), name="dispute-rule"),
    path("disputes/<int:pk>/reevaluate/", views.DisputeReevaluateApi.as_view(), name="dispute-reevaluate"),
    path("disputes/<int:pk>/files/<int:file_id>/", views.DisputeFileApi.as_view(), name="dispute-file"),
    path("payouts/onboarding/", views.PayoutOnboardingApi.as_view(), name="payout-onboarding"),
    path("payouts/", views.PayoutListApi.as_view(), name="payout-list"),
]
