from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from escrow import receivers
        from trust.signals import evaluation_finalized

        evaluation_finalized.connect(receivers.decide_on_evaluation, dispatch_uid="escrow.decide_on_evaluation")
