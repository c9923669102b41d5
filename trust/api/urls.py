from django.urls import path

from trust.api import views

urlpatterns = [
    path("engagements/<int:pk>/evaluation/", views.EngagementEvaluationApi.as_view(), name="engagement-evaluation"),
]
