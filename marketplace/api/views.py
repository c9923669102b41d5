"""Marketplace API: parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import PagePagination
from core.api.users import actor, viewer
from escrow import selectors as escrow_selectors
from marketplace import selectors, services
from marketplace.api.authentication import AgentTokenAuthentication
from marketplace.api.serializers import (
    AcceptInputSerializer,
    AgentTokenInputSerializer,
    AgentTokenSerializer,
    BenchmarkClaimInputSerializer,
    BenchmarkClaimSerializer,
    CancelInputSerializer,
    DeliverInputSerializer,
    EngagementCreateSerializer,
    EngagementDetailSerializer,
    EngagementListSerializer,
    ListingDetailSerializer,
    ListingInputSerializer,
    ListingOutputSerializer,
    ListingOwnerSerializer,
    ListingPatchSerializer,
    ListingQuerySerializer,
    PactPublishSerializer,
    PactTemplateSerializer,
    ProposalInputSerializer,
)
from marketplace.models import AgentListing, AgentToken, Engagement, PactTemplate
from trust import selectors as trust_selectors


def _listing_or_404(request: Request, pk: int) -> AgentListing:
    try:
        return selectors.listing_get(user=viewer(request), pk=pk)
    except AgentListing.DoesNotExist as exc:
        raise Http404 from exc


def _engagement_or_404(request: Request, pk: int) -> Engagement:
    try:
        return selectors.engagement_get(user=actor(request), pk=pk)
    except Engagement.DoesNotExist as exc:
        raise Http404 from exc


def _listing_representation(request: Request, listing: AgentListing) -> dict[str, Any]:
    owner = request.user.is_authenticated and (request.user.pk == listing.seller_id or request.user.is_staff)
    serializer_cls = ListingOwnerSerializer if owner else ListingDetailSerializer
    trust = trust_selectors.trust_summaries(listing_ids=[listing.pk])
    return serializer_cls(listing, context={"trust": trust}).data


def _engagement_representation(request: Request, pk: int) -> dict[str, Any]:
    engagement = _engagement_or_404(request, pk)
    evaluation = trust_selectors.evaluation_summaries(engagement_ids=[engagement.pk]).get(engagement.pk)
    escrow = escrow_selectors.escrow_summaries(engagement_ids=[engagement.pk]).get(engagement.pk)
    dispute = escrow_selectors.dispute_for_engagement(engagement_id=engagement.pk)
    context = {
        "evaluation": evaluation,
        "escrow": escrow,
        "dispute": escrow_selectors.dispute_report(dispute) if dispute is not None else None,
    }
    return EngagementDetailSerializer(engagement, context=context).data


class AgentListApi(APIView):
    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(
        parameters=[ListingQuerySerializer, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses=ListingOutputSerializer(many=True),
        tags=["agents"],
    )
    def get(self, request: Request) -> Response:
        query = ListingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        listings = selectors.listing_list(user=viewer(request), **query.validated_data)
        category = query.validated_data["category"].lower()
        if query.validated_data["ordering"] == "trust":
            listings = trust_selectors.listings_ranked(listings, category=category)
        paginator = PagePagination()
        page = paginator.paginate_queryset(listings, request, view=self) or []
        trust = trust_selectors.trust_summaries(listing_ids=[listing.pk for listing in page], category=category)
        return paginator.get_paginated_response(ListingOutputSerializer(page, many=True, context={"trust": trust}).data)

    @extend_schema(request=ListingInputSerializer, responses={201: ListingOwnerSerializer}, tags=["agents"])
    def post(self, request: Request) -> Response:
        data = ListingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        listing = services.listing_create(seller=actor(request), **data.validated_data)
        return Response(
            _listing_representation(request, selectors.listing_get(user=viewer(request), pk=listing.pk)),
            status=status.HTTP_201_CREATED,
        )


class AgentDetailApi(APIView):
    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(responses=ListingOwnerSerializer, tags=["agents"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(_listing_representation(request, _listing_or_404(request, pk)))

    @extend_schema(request=ListingPatchSerializer, responses=ListingOwnerSerializer, tags=["agents"])
    def patch(self, request: Request, pk: int) -> Response:
        listing = _listing_or_404(request, pk)
        data = ListingPatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.listing_update(listing=listing, actor=actor(request), **data.validated_data)
        return Response(_listing_representation(request, _listing_or_404(request, pk)))


class AgentPactsApi(APIView):
    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(responses=PactTemplateSerializer(many=True), tags=["pacts"])
    def get(self, request: Request, pk: int) -> Response:
        listing = _listing_or_404(request, pk)
        return Response(PactTemplateSerializer(selectors.pact_templates_for(listing=listing), many=True).data)

    @extend_schema(request=PactPublishSerializer, responses={201: PactTemplateSerializer}, tags=["pacts"])
    def post(self, request: Request, pk: int) -> Response:
        listing = _listing_or_404(request, pk)
        data = PactPublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.pact_publish(listing=listing, actor=actor(request), **data.validated_data)
        template = selectors.pact_template_get(listing=listing, pk=version.template_id)
        return Response(PactTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


class AgentBenchmarksApi(APIView):
    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(responses=BenchmarkClaimSerializer(many=True), tags=["agents"])
    def get(self, request: Request, pk: int) -> Response:
        listing = _listing_or_404(request, pk)
        return Response(BenchmarkClaimSerializer(selectors.benchmark_claims_for(listing=listing), many=True).data)

    @extend_schema(request=BenchmarkClaimInputSerializer, responses={201: BenchmarkClaimSerializer}, tags=["agents"])
    def post(self, request: Request, pk: int) -> Response:
        listing = _listing_or_404(request, pk)
        data = BenchmarkClaimInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claim = services.benchmark_claim_create(listing=listing, actor=actor(request), **data.validated_data)
        return Response(BenchmarkClaimSerializer(claim).data, status=status.HTTP_201_CREATED)


_TokenCreated = inline_serializer(
    "AgentTokenCreated", fields={"token": serializers.CharField(), "agent_token": AgentTokenSerializer()}
)


class AgentTokensApi(APIView):
    def _owned(self, request: Request, pk: int) -> AgentListing:
        listing = _listing_or_404(request, pk)
        if listing.seller_id != request.user.pk:
            raise Http404
        return listing

    @extend_schema(responses=AgentTokenSerializer(many=True), tags=["agents"])
    def get(self, request: Request, pk: int) -> Response:
        listing = self._owned(request, pk)
        return Response(AgentTokenSerializer(selectors.agent_tokens_for(listing=listing), many=True).data)

    @extend_schema(request=AgentTokenInputSerializer, responses={201: _TokenCreated}, tags=["agents"])
    def post(self, request: Request, pk: int) -> Response:
        listing = self._owned(request, pk)
        data = AgentTokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = services.agent_token_create(
            listing=listing, actor=actor(request), name=data.validated_data["name"]
        )
        return Response({"token": raw, "agent_token": AgentTokenSerializer(token).data}, status=status.HTTP_201_CREATED)


class AgentTokenRevokeApi(APIView):
    @extend_schema(request=None, responses={200: AgentTokenSerializer}, tags=["agents"])
    def delete(self, request: Request, pk: int, token_id: int) -> Response:
        listing = _listing_or_404(request, pk)
        if listing.seller_id != request.user.pk:
            raise Http404
        try:
            token = selectors.agent_tokens_for(listing=listing).get(pk=token_id)
        except AgentToken.DoesNotExist as exc:
            raise Http404 from exc
        return Response(AgentTokenSerializer(services.agent_token_revoke(token=token, actor=actor(request))).data)


class EngagementListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Engagement.Status.values),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=EngagementListSerializer(many=True),
        tags=["engagements"],
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status", "")
        if wanted and wanted not in Engagement.Status.values:
            raise serializers.ValidationError(
                {"status": [f"Unknown status; one of {', '.join(Engagement.Status.values)}."]}
            )
        engagements = selectors.engagement_list(user=actor(request), status=wanted)
        paginator = PagePagination()
        page = paginator.paginate_queryset(engagements, request, view=self)
        return paginator.get_paginated_response(EngagementListSerializer(page, many=True).data)

    @extend_schema(
        request=EngagementCreateSerializer, responses={201: EngagementDetailSerializer}, tags=["engagements"]
    )
    def post(self, request: Request) -> Response:
        data = EngagementCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            listing = selectors.listing_get(user=viewer(request), pk=data.validated_data["agent"])
        except AgentListing.DoesNotExist as exc:
            raise serializers.ValidationError({"agent": ["No such agent."]}) from exc
        try:
            template = selectors.pact_template_get(listing=listing, pk=data.validated_data["pact"])
        except PactTemplate.DoesNotExist as exc:
            raise serializers.ValidationError({"pact": ["No such pact for this agent."]}) from exc
        engagement = services.engagement_create(
            buyer=actor(request),
            listing=listing,
            template=template,
            task=data.validated_data["task"],
            category=data.validated_data["category"],
        )
        return Response(_engagement_representation(request, engagement.pk), status=status.HTTP_201_CREATED)


class EngagementDetailApi(APIView):
    @extend_schema(responses=EngagementDetailSerializer, tags=["engagements"])
    def get(self, request: Request, pk: int) -> Response:
        return Response(_engagement_representation(request, pk))


class EngagementProposalsApi(APIView):
    @extend_schema(request=ProposalInputSerializer, responses={201: EngagementDetailSerializer}, tags=["engagements"])
    def post(self, request: Request, pk: int) -> Response:
        engagement = _engagement_or_404(request, pk)
        data = ProposalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.proposal_create(engagement_id=engagement.pk, actor=actor(request), **data.validated_data)
        return Response(_engagement_representation(request, pk), status=status.HTTP_201_CREATED)


class EngagementAcceptApi(APIView):
    @extend_schema(request=AcceptInputSerializer, responses=EngagementDetailSerializer, tags=["engagements"])
    def post(self, request: Request, pk: int) -> Response:
        engagement = _engagement_or_404(request, pk)
        data = AcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.proposal_accept(
            engagement_id=engagement.pk, actor=actor(request), proposal_number=data.validated_data.get("proposal")
        )
        return Response(_engagement_representation(request, pk))


class EngagementCancelApi(APIView):
    @extend_schema(request=CancelInputSerializer, responses=EngagementDetailSerializer, tags=["engagements"])
    def post(self, request: Request, pk: int) -> Response:
        engagement = _engagement_or_404(request, pk)
        data = CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.engagement_cancel(engagement_id=engagement.pk, actor=actor(request), **data.validated_data)
        return Response(_engagement_representation(request, pk))


class EngagementDeliverApi(APIView):
    authentication_classes = [AgentTokenAuthentication, TokenAuthentication, SessionAuthentication]

    @extend_schema(request=DeliverInputSerializer, responses={201: EngagementDetailSerializer}, tags=["engagements"])
    def post(self, request: Request, pk: int) -> Response:
        engagement = _engagement_or_404(request, pk)
        data = DeliverInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent_token = request.auth if isinstance(request.auth, AgentToken) else None
        services.deliverable_submit(
            engagement_id=engagement.pk,
            actor=actor(request),
            source="agent_token" if agent_token else "seller",
            agent_token=agent_token,
            **data.validated_data,
        )
        return Response(_engagement_representation(request, pk), status=status.HTTP_201_CREATED)
