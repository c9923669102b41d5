from django.urls import path

from trust.api import views

urlpatterns = [
    path("engagements/<int:pk>/evaluation/", views.EngagementEvaluationApi.as_view(), name="engagement-evaluation"),
    path("agents/<int:pk>/trust/", views.AgentTrustApi.as_view(), name="agent-trust"),
    path("leaderboard/", views.LeaderboardApi.as_view(), name="leaderboard"),
]
