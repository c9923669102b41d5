from django.apps import AppConfig


class WebConfig(AppConfig):
    """Server-rendered pages and the demo seed: presentation above every domain app."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"
