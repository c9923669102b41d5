from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.users import actor
from escrow import selectors, services
from escrow.models import Escrow
from marketplace import selectors as marketplace_selectors
from marketplace.models import Engagement

_EscrowOut = OpenApiResponse(description="The escrow: amounts, status, settlement, ledger entries")


def _visible_engagement(request: Request, pk: int) -> Engagement:
    try:
        return marketplace_selectors.engagement_get(user=actor(request), pk=pk)
    except Engagement.DoesNotExist as exc:
        raise Http404 from exc


def _escrow_body(request: Request, escrow_id: int) -> dict:
    try:
        return selectors.escrow_report(selectors.escrow_get(user=actor(request), pk=escrow_id))
    except Escrow.DoesNotExist as exc:
        raise Http404 from exc


class EngagementFundApi(APIView):
    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "FundResult",
                {"escrow": serializers.DictField(), "checkout_url": serializers.CharField(allow_null=True)},
            )
        },
        tags=["escrow"],
    )
    def post(self, request: Request, pk: int) -> Response:
        engagement = _visible_engagement(request, pk)
        escrow, checkout_url = services.escrow_fund(engagement_id=engagement.pk, actor=actor(request), via_api=True)
        return Response(
            {"escrow": _escrow_body(request, escrow.pk), "checkout_url": checkout_url}, status=status.HTTP_201_CREATED
        )


class EngagementReleaseApi(APIView):
    @extend_schema(request=None, responses={200: _EscrowOut}, tags=["escrow"])
    def post(self, request: Request, pk: int) -> Response:
        engagement = _visible_engagement(request, pk)
        settlement = services.escrow_release(engagement_id=engagement.pk, actor=actor(request))
        return Response(_escrow_body(request, settlement.escrow_id))


class EscrowDetailApi(APIView):
    @extend_schema(responses={200: _EscrowOut}, tags=["escrow"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(_escrow_body(request, pk))


class PayoutOnboardingApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "Onboarding",
                {
                    "account": serializers.CharField(),
                    "url": serializers.CharField(allow_null=True),
                    "payouts_enabled": serializers.BooleanField(),
                },
            )
        },
        tags=["payouts"],
    )
    def post(self, request: Request) -> Response:
        account, url = services.payout_onboard(seller=actor(request))
        return Response({"account": account.provider_account, "url": url, "payouts_enabled": account.payouts_enabled})


class PayoutListApi(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="Payout account state and settlements")}, tags=["payouts"]
    )
    def get(self, request: Request) -> Response:
        user = actor(request)
        if user.role != "seller":
            raise Http404("Payouts are for sellers.")
        return Response(selectors.seller_payouts(seller=user))
