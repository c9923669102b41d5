from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import PagePagination
from core.api.parsers import StrictJSONParser
from core.api.users import actor
from core.errors import NotAllowed
from escrow import disputes, selectors, services
from escrow.models import Dispute, DisputeEvidenceFile, Escrow
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


# --- disputes ----------------------------------------------------------------------------------------

_DisputeOut = OpenApiResponse(
    description="The dispute: {id, engagement, status, opened_by, reason, evidence, answer, "
    "ruling: {outcome, seller_share_bps, rationale, ruled_by, ruled_at} | null}, plus its files, windows and history"
)
_FILES_HELP = "multipart/form-data may add evidence files under `files` (PDF, PNG, JPEG, GIF or UTF-8 text, 5 MB each)"


class DisputeOpenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="What is contested, in a sentence or two.")
    evidence = serializers.CharField(max_length=20_000, required=False, allow_blank=True, default="")


class DisputeAnswerInput(serializers.Serializer):
    answer = serializers.CharField(max_length=20_000)


class DisputeWithdrawInput(serializers.Serializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RulingInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["release", "refund", "split"])
    seller_share_bps = serializers.IntegerField(
        min_value=0,
        max_value=10_000,
        required=False,
        allow_null=True,
        default=None,
        help_text="The seller's share in basis points: required for a split; release = 10000, refund = 0.",
    )
    rationale = serializers.CharField(max_length=5000, help_text="Why: shown to both parties and kept as evidence.")


class DisputeQuery(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["active", "all", *Dispute.Status.values], required=False, default="active"
    )


def _dispute_body(request: Request, dispute_id: int) -> dict:
    try:
        dispute = selectors.dispute_get(user=actor(request), pk=dispute_id)
    except Dispute.DoesNotExist as exc:
        raise Http404("No such dispute.") from exc
    return _with_file_urls(request, selectors.dispute_report(dispute))


def _with_file_urls(request: Request, body: dict) -> dict:
    for f in body["files"]:
        f["url"] = request.build_absolute_uri(reverse("dispute-file", kwargs={"pk": body["id"], "file_id": f["id"]}))
    return body


def _visible_dispute_id(request: Request, pk: int) -> int:
    if not Dispute.objects.filter(selectors.dispute_visible_to(actor(request)), pk=pk).exists():
        raise Http404("No such dispute.")
    return pk


def _uploads(request: Request) -> list:
    files = request.FILES.getlist("files") if hasattr(request, "FILES") else []
    return list(files)


_PARSERS = [StrictJSONParser, MultiPartParser]


class EngagementDisputesApi(APIView):
    parser_classes = _PARSERS

    @extend_schema(
        request=DisputeOpenInput,
        responses={201: _DisputeOut},
        description="A party disputes the evaluated engagement within the review window. " + _FILES_HELP + ".",
        tags=["disputes"],
    )
    def post(self, request: Request, pk: int) -> Response:
        engagement = _visible_engagement(request, pk)
        data = DisputeOpenInput(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = disputes.dispute_open(
            engagement_id=engagement.pk, actor=actor(request), files=_uploads(request), **data.validated_data
        )
        return Response(_dispute_body(request, dispute.pk), status=status.HTTP_201_CREATED)


class DisputeListApi(APIView):
    @extend_schema(
        parameters=[DisputeQuery, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: _DisputeOut},
        description="Staff: the dispute queue, oldest first (active ones unless `status` says otherwise).",
        tags=["disputes"],
    )
    def get(self, request: Request) -> Response:
        if not actor(request).is_staff:
            raise NotAllowed("Only staff see the dispute queue.")
        query = DisputeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = PagePagination()
        page = paginator.paginate_queryset(
            selectors.dispute_list_detailed(status=query.validated_data["status"]), request, view=self
        )
        rows = [_with_file_urls(request, selectors.dispute_report(d)) for d in page or []]
        return paginator.get_paginated_response(rows)


class DisputeDetailApi(APIView):
    @extend_schema(responses={200: _DisputeOut}, tags=["disputes"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(_dispute_body(request, pk))


class DisputeAnswerApi(APIView):
    parser_classes = _PARSERS

    @extend_schema(
        request=DisputeAnswerInput,
        responses={200: _DisputeOut},
        description="The other party answers within its window. " + _FILES_HELP + ".",
        tags=["disputes"],
    )
    def post(self, request: Request, pk: int) -> Response:
        _visible_dispute_id(request, pk)
        data = DisputeAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.dispute_answer(
            dispute_id=pk, actor=actor(request), answer=data.validated_data["answer"], files=_uploads(request)
        )
        return Response(_dispute_body(request, pk))


class DisputeWithdrawApi(APIView):
    @extend_schema(request=DisputeWithdrawInput, responses={200: _DisputeOut}, tags=["disputes"])
    def post(self, request: Request, pk: int) -> Response:
        _visible_dispute_id(request, pk)
        data = DisputeWithdrawInput(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.dispute_withdraw(dispute_id=pk, actor=actor(request), note=data.validated_data["note"])
        return Response(_dispute_body(request, pk))


class DisputeRuleApi(APIView):
    @extend_schema(
        request=RulingInput,
        responses={200: _DisputeOut},
        description="Staff rule: the escrow settles once by the ruling (409 when already ruled).",
        tags=["disputes"],
    )
    def post(self, request: Request, pk: int) -> Response:
        _visible_dispute_id(request, pk)
        data = RulingInput(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.dispute_rule(dispute_id=pk, actor=actor(request), **data.validated_data)
        return Response(_dispute_body(request, pk))


class DisputeReevaluateApi(APIView):
    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "Reevaluation", {"evaluation": serializers.IntegerField(), "round": serializers.IntegerField()}
            )
        },
        description="Staff: judge the delivery again with a larger panel; every round stays as evidence.",
        tags=["disputes"],
    )
    def post(self, request: Request, pk: int) -> Response:
        _visible_dispute_id(request, pk)
        evaluation = disputes.dispute_request_reevaluation(dispute_id=pk, actor=actor(request))
        return Response({"evaluation": evaluation.pk, "round": evaluation.round}, status=status.HTTP_202_ACCEPTED)


class DisputeFileApi(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="The file, as an attachment")},
        description="An evidence file, for the engagement's parties and staff only.",
        tags=["disputes"],
    )
    def get(self, request: Request, pk: int, file_id: int) -> FileResponse:
        try:
            evidence_file = selectors.dispute_evidence_file_get(user=actor(request), pk=file_id)
        except DisputeEvidenceFile.DoesNotExist as exc:
            raise Http404("No such file.") from exc
        if evidence_file.dispute_id != pk:
            raise Http404("No such file.")
        return evidence_file_response(evidence_file)


def evidence_file_response(evidence_file: DisputeEvidenceFile) -> FileResponse:
    """Always a download, typed by what the content was found to be, never rendered by the browser."""
    try:
        handle = evidence_file.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404("The file is no longer stored.") from exc
    response = FileResponse(
        handle, as_attachment=True, filename=evidence_file.original_name, content_type=evidence_file.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


class EscrowRuleApi(APIView):
    @extend_schema(
        request=RulingInput,
        responses={200: _EscrowOut},
        description="Staff settle an escrow held for them (an inconclusive evaluation), with a rationale.",
        tags=["disputes"],
    )
    def post(self, request: Request, pk: int) -> Response:
        _escrow_body(request, pk)  # 404 unless visible
        data = RulingInput(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.escrow_rule_held(escrow_id=pk, actor=actor(request), **data.validated_data)
        return Response(_escrow_body(request, pk))


class EngagementEvidenceApi(APIView):
    @extend_schema(
        responses={200: OpenApiResponse(description="The engagement's evidence records, each verifiable offline")},
        tags=["evidence"],
    )
    def get(self, request: Request, pk: int) -> Response:
        engagement = _visible_engagement(request, pk)
        return Response(selectors.engagement_evidence_bundle(engagement_id=engagement.pk))
