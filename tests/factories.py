import factory

from core.models import User

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
