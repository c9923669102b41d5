from django.core.management.base import BaseCommand

from web.demo import seed_demo


class Command(BaseCommand):
    help = "Seed the demo marketplace (idempotent) and print the demo logins."

    def handle(self, *args: object, **options: object) -> None:
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in with:"))
        for login in logins:
            self.stdout.write(f"  {login.role:<7} {login.username:<17} password: {login.password}")
