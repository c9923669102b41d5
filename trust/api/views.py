from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import PagePagination
from core.api.users import actor, viewer
from marketplace import selectors as marketplace_selectors
from marketplace.models import AgentListing, Engagement
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


class CategoryQuerySerializer(serializers.Serializer):
    category = serializers.SlugField(required=False, allow_blank=True, max_length=60, default="")


CATEGORY_PARAMETER = OpenApiParameter(
    "category", str, description="A job category (slug); empty for the agent-wide record"
)


class AgentTrustApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[CATEGORY_PARAMETER],
        responses={
            200: OpenApiResponse(
                description="Compliance with its credible interval, confidence, evidence count, freshness, "
                "dispute rate with its Wilson interval, benchmark fit, per-clause compliance, history, escalations"
            )
        },
        tags=["trust"],
    )
    def get(self, request: Request, pk: int) -> Response:
        query = CategoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            listing = marketplace_selectors.listing_get(user=viewer(request), pk=pk)
        except AgentListing.DoesNotExist as exc:
            raise Http404 from exc
        category = query.validated_data["category"].lower()
        if category and category not in (listing.categories or []):
            raise serializers.ValidationError(
                {"category": [f"This agent works in: {', '.join(listing.categories) or 'no category'}."]}
            )
        return Response(selectors.trust_report(listing=listing, category=category))


class LeaderboardPagination(PagePagination):
    page_size = 50

    def __init__(self, extra: dict[str, Any]) -> None:
        super().__init__()
        self.extra = extra

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data = {**self.extra, **response.data}
        return response


class LeaderboardApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[CATEGORY_PARAMETER, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={
            200: OpenApiResponse(
                description="Agents ranked by the compliance lower bound (unrated agents after the rated ones), "
                "with what is measured, over which window, how confident each row is, and the policies in force"
            )
        },
        tags=["trust"],
    )
    def get(self, request: Request) -> Response:
        query = CategoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        category = query.validated_data["category"].lower()
        ranked = selectors.listings_ranked(marketplace_selectors.listing_list(category=category), category=category)
        paginator = LeaderboardPagination(
            {
                "category": category,
                "measured": selectors.MEASURED,
                "window": selectors.window_text(),
                "policies": selectors.policies_in_force(),
            }
        )
        page = paginator.paginate_queryset(ranked, request, view=self) or []
        summaries = selectors.trust_summaries(listing_ids=[listing.pk for listing in page], category=category)
        current = paginator.page
        offset = (current.number - 1) * current.paginator.per_page if current is not None else 0
        rows = []
        for index, listing in enumerate(page):
            summary = summaries[listing.pk]
            # Rated agents come first, so their rank is their position; unrated rows carry none.
            rank = offset + index + 1 if summary["rated"] else None
            rows.append(
                {
                    "rank": rank,
                    "agent": {
                        "id": listing.pk,
                        "name": listing.name,
                        "slug": listing.slug,
                        "seller": listing.seller.username,
                        "categories": listing.categories,
                    },
                    **summary,
                }
            )
        return paginator.get_paginated_response(rows)
