import datetime

import factory
from django.utils import timezone

from core.models import User
from trust.models import TrustPolicy

TEST_PASSWORD = "correct-horse-battery-staple-7"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = User.Role.BUYER
    password = factory.django.Password(TEST_PASSWORD)


class BuyerFactory(UserFactory):
    role = User.Role.BUYER


class SellerFactory(UserFactory):
    role = User.Role.SELLER


class TrustPolicyFactory(factory.django.DjangoModelFactory[TrustPolicy]):
    """A trust policy that fires on an agent's first judged job unless told otherwise."""

    class Meta:
        model = TrustPolicy

    name = factory.Sequence(lambda n: f"policy {n}")
    metric = TrustPolicy.Metric.COMPLIANCE_LOWER
    comparator = TrustPolicy.Comparator.LT
    threshold = 0.99
    action = TrustPolicy.Action.FLAG_LISTING
    min_evidence = 1
    owner = factory.SubFactory(UserFactory, role="", is_staff=True)
    next_review_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=30))
