"""The demo marketplace seeded by `manage.py seed_demo`.

Built only through the real services, idempotently: running it twice leaves
the same accounts. Later parts of the product extend it with listings, pacts,
engagements and evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from core import services
from core.models import User

DEMO_PASSWORD = "pactum-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str


DEMO_ADMIN = "admin"
DEMO_BUYERS = ("ada", "grace")
DEMO_SELLERS = ("atlas-labs", "beacon-research", "quill-works")


@transaction.atomic
def seed_demo() -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    if not User.objects.filter(username=DEMO_ADMIN).exists():
        User.objects.create_superuser(DEMO_ADMIN, f"{DEMO_ADMIN}@pactum.invalid", DEMO_PASSWORD)
    logins.append(DemoLogin(DEMO_ADMIN, "admin", DEMO_PASSWORD))
    for role, names in ((User.Role.BUYER, DEMO_BUYERS), (User.Role.SELLER, DEMO_SELLERS)):
        for name in names:
            if not User.objects.filter(username=name).exists():
                services.user_register(username=name, email=f"{name}@pactum.invalid", password=DEMO_PASSWORD, role=role)
            logins.append(DemoLogin(name, role.value, DEMO_PASSWORD))
    return logins
