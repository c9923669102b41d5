"""Forms of the dispute pages (parties) and the staff console. They parse only;
the rules (windows, who may do what, the share of a ruling) live in
`escrow.disputes`, whose errors the views show on the form."""

from __future__ import annotations

from typing import Any

from django import forms

from web.forms import ServiceErrorsMixin

_FILES_HELP = "Optional: up to 5 files, 5 MB each: PDF, PNG, JPEG, GIF or plain text (checked by content)."


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,.gif,.txt,.md,.csv,.json"})
        )
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list:
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


class DisputeOpenForm(ServiceErrorsMixin, forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        help_text="What you contest, in a sentence or two. The other side and an admin read it.",
    )
    evidence = forms.CharField(
        label="Evidence",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Point at the clauses, claims or verdicts concerned.",
    )
    attachments = MultipleFileField(label="Files", help_text=_FILES_HELP)


class DisputeAnswerForm(ServiceErrorsMixin, forms.Form):
    answer = forms.CharField(
        label="Your answer", max_length=20_000, widget=forms.Textarea(attrs={"rows": 5}), help_text="Your side of it."
    )
    attachments = MultipleFileField(label="Files", help_text=_FILES_HELP)


class DisputeWithdrawForm(ServiceErrorsMixin, forms.Form):
    note = forms.CharField(label="Note", required=False, max_length=500)


class RulingForm(ServiceErrorsMixin, forms.Form):
    outcome = forms.ChoiceField(
        label="Ruling",
        widget=forms.RadioSelect,
        choices=[
            ("release", "Release: everything to the seller (10000 bps)"),
            ("refund", "Refund: everything back to the buyer (0 bps)"),
            ("split", "Split: the seller gets the share below"),
        ],
    )
    seller_share_bps = forms.IntegerField(
        label="Seller's share (basis points)",
        required=False,
        min_value=0,
        max_value=10_000,
        help_text="For a split: 0 to 10000 (5000 = half). Rounded down to the cent for the seller.",
    )
    rationale = forms.CharField(
        label="Rationale",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Why: both parties read it, and it is kept in the evidence chain.",
    )

    def clean_rationale(self) -> str:
        value = self.cleaned_data["rationale"].strip()
        if not value:
            raise forms.ValidationError("Write why you rule this way.")
        return value
