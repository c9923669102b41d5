from django.apps import AppConfig


class TrustConfig(AppConfig):
    name = "trust"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from marketplace.signals import deliverable_submitted
        from trust import receivers

        deliverable_submitted.connect(receivers.start_evaluation, dispatch_uid="trust.start_evaluation")
