from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.users import actor
from marketplace import selectors as marketplace_selectors
from marketplace.models import Engagement
from trust import selectors


class EngagementEvaluationApi(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="The latest evaluation round of the engagement")},
        tags=["engagements"],
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            engagement = marketplace_selectors.engagement_get(user=actor(request), pk=pk)
        except Engagement.DoesNotExist as exc:
            raise Http404 from exc
        evaluation = selectors.evaluation_latest(engagement_id=engagement.pk)
        if evaluation is None:
            raise Http404("This engagement has not been delivered, so there is no evaluation yet.")
        report = selectors.evaluation_report(evaluation)
        report["rounds"] = [
            {"id": e.pk, "round": e.round, "status": e.status, "outcome": e.outcome or None, "reason": e.reason}
            for e in selectors.evaluation_rounds(engagement_id=engagement.pk)
        ]
        return Response(report)
