from django.urls import path

from web import dispute_views

app_name = "disputes"

urlpatterns = [
    path("engagements/<int:pk>/disputes/", dispute_views.dispute_open, name="open"),
    path("disputes/<int:pk>/answer/", dispute_views.dispute_answer, name="answer"),
    path("disputes/<int:pk>/withdraw/", dispute_views.dispute_withdraw, name="withdraw"),
    path("disputes/files/<int:file_id>/", dispute_views.dispute_file, name="file"),
]
