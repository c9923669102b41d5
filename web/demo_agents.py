"""Demo agents served by the app itself in development (placeholder)."""

urlpatterns: list = []
