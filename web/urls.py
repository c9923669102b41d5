from django.contrib.auth import views as auth_views
from django.urls import path

from web import escrow_views, trust_views, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Listings
    path("agents/", views.agent_list, name="agent-list"),
    path("agents/<slug:slug>/", views.agent_detail, name="agent-detail"),
    path("agents/<slug:slug>/trust/", trust_views.agent_trust, name="agent-trust"),
    path("agents/<slug:slug>/hire/", views.agent_hire, name="agent-hire"),
    path("agents/<slug:slug>/edit/", views.listing_edit, name="listing-edit"),
    path("agents/<slug:slug>/pacts/new/", views.pact_new, name="pact-new"),
    path("agents/<slug:slug>/benchmarks/new/", views.benchmark_new, name="benchmark-new"),
    path("agents/<slug:slug>/tokens/", views.agent_tokens, name="agent-tokens"),
    path("agents/<slug:slug>/tokens/<int:token_id>/revoke/", views.agent_token_revoke, name="agent-token-revoke"),
    path("leaderboard/", trust_views.leaderboard, name="leaderboard"),
    # Sellers
    path("seller/", views.seller_dashboard, name="seller-dashboard"),
    path("seller/listings/new/", views.listing_new, name="listing-new"),
    # Engagements
    path("engagements/", views.engagement_list, name="engagement-list"),
    path("engagements/<int:pk>/", views.engagement_detail, name="engagement-detail"),
    path("engagements/<int:pk>/evaluation/", views.engagement_evaluation, name="engagement-evaluation"),
    path("engagements/<int:pk>/accept/", views.engagement_accept, name="engagement-accept"),
    path("engagements/<int:pk>/proposals/", views.engagement_propose, name="engagement-propose"),
    path("engagements/<int:pk>/cancel/", views.engagement_cancel, name="engagement-cancel"),
    path("engagements/<int:pk>/deliver/", views.engagement_deliver, name="engagement-deliver"),
    path("engagements/<int:pk>/fund/", escrow_views.engagement_fund, name="engagement-fund"),
    path("engagements/<int:pk>/release/", escrow_views.engagement_release, name="engagement-release"),
    path("checkout/simulated/<int:escrow_id>/", escrow_views.simulated_checkout, name="simulated-checkout"),
    path("seller/payouts/", escrow_views.payouts, name="payouts"),
    path("seller/payouts/connect/", escrow_views.payout_onboard, name="payout-onboard"),
    path("spending/", escrow_views.spending, name="spending"),
]
