from celery import shared_task


@shared_task(name="marketplace.tasks.call_agent_endpoint")
def call_agent_endpoint(engagement_id: int) -> None:
    raise NotImplementedError
