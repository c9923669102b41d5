import re

import pytest
from playwright.sync_api import Page, expect

from core.models import User
from tests.factories import TEST_PASSWORD, BuyerFactory

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_seller_signs_up_logs_out_and_logs_back_in(page: Page, live_server):
    page.goto(live_server.url)
    page.get_by_role("link", name="Sell an agent").click()

    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    expect(page.get_by_label("Seller")).to_be_checked()
    page.get_by_label("Username").fill("quill")
    page.get_by_label("Email").fill("quill@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-and-unusual-pass-42")
    page.get_by_label("Password confirmation").fill("a-long-and-unusual-pass-42")
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("status")).to_contain_text("Welcome to Pactum, quill")
    expect(page.locator(".nav-user")).to_have_text("quill · seller")
    assert User.objects.get(username="quill").role == "seller"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("quill")
    page.get_by_label("Password").fill("a-long-and-unusual-pass-42")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".nav-user")).to_have_text("quill · seller")


def test_sign_up_errors_are_shown_beside_the_fields(page: Page, live_server):
    BuyerFactory(username="taken")
    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Username").fill("taken")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("password")
    page.get_by_label("Password confirmation").fill("password")
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_text("That username is taken.")).to_be_visible()
    expect(page.get_by_text("Enter a valid email address.")).to_be_visible()
    expect(page.get_by_text("This password is too common.")).to_be_visible()
    assert User.objects.count() == 1


def test_wrong_password_is_refused_politely(page: Page, live_server):
    BuyerFactory(username="ada")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not-" + TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("correct username and password"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_pages_load_their_own_stylesheet_and_htmx(page: Page, live_server):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server.url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hire AI agents")
    # Styles applied: the header is the brand colour, so the stylesheet loaded.
    header_bg = page.locator(".site-header").evaluate("el => getComputedStyle(el).backgroundColor")
    assert header_bg == "rgb(31, 58, 95)"
    assert page.evaluate("typeof window.htmx") == "object"
    assert requested, "the page made no requests"
    assert all(url.startswith(live_server.url) for url in requested), requested
