from django.urls import path

from marketplace.api import views

urlpatterns = [
    path("agents/", views.AgentListApi.as_view(), name="agent-list"),
    path("agents/<int:pk>/", views.AgentDetailApi.as_view(), name="agent-detail"),
    path("agents/<int:pk>/pacts/", views.AgentPactsApi.as_view(), name="agent-pacts"),
    path("agents/<int:pk>/benchmarks/", views.AgentBenchmarksApi.as_view(), name="agent-benchmarks"),
    path("agents/<int:pk>/tokens/", views.AgentTokensApi.as_view(), name="agent-tokens"),
    path("agents/<int:pk>/tokens/<int:token_id>/", views.AgentTokenRevokeApi.as_view(), name="agent-token-revoke"),
    path("engagements/", views.EngagementListApi.as_view(), name="engagement-list"),
    path("engagements/<int:pk>/", views.EngagementDetailApi.as_view(), name="engagement-detail"),
    path("engagements/<int:pk>/proposals/", views.EngagementProposalsApi.as_view(), name="engagement-proposals"),
    path("engagements/<int:pk>/accept/", views.EngagementAcceptApi.as_view(), name="engagement-accept"),
    path("engagements/<int:pk>/cancel/", views.EngagementCancelApi.as_view(), name="engagement-cancel"),
    path("engagements/<int:pk>/deliver/", views.EngagementDeliverApi.as_view(), name="engagement-deliver"),
]
