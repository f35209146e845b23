"""Ship the free instruments: PHQ-9, GAD-7 and the project's own session feedback.

Keyed on (no practice, code, version) and written with update_or_create, so running it on a
database that already has them changes nothing. Reversing deletes them; that fails while
responses to them exist (Response.instrument is PROTECT), which is what a clinical record needs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import migrations

FREQUENCY = ["Not at all", "Several days", "More than half the days", "Nearly every day"]
PFIZER = (
    "Developed by Drs. Robert L. Spitzer, Janet B. W. Williams, Kurt Kroenke and colleagues, "
    "with an educational grant from Pfizer Inc. Free to use: no permission is required to "
    "reproduce, translate, display or distribute."
)

PHQ9_ITEMS = [
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself — or that you are a failure or have let yourself or your "
    "family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite — "
    "being so fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
]

GAD7_ITEMS = [
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
]

# The project's own wording. Deliberately not the SRS or WAI items, which are copyrighted.
FEEDBACK_ITEMS = [
    ("relationship", "My therapist listened to me and treated me with respect today."),
    ("goals_topics", "Today we spent our time on what matters most to me right now."),
    ("approach", "The way we worked together today made sense to me and suited me."),
    ("overall", "All in all, I got something worthwhile from today's session."),
]
FEEDBACK_LABELS = ["Not at all", *[""] * 9, "Completely"]

INSTRUMENTS: list[dict[str, Any]] = [
    {
        "code": "phq-9",
        "name": "PHQ-9",
        "kind": "outcome",
        "licence_note": PFIZER,
        "reliable_change": Decimal(6),
        "items": [
            {"key": f"phq9_{n}", "wording": wording, "scale_max": 3, "scale_labels": FREQUENCY}
            for n, wording in enumerate(PHQ9_ITEMS, start=1)
        ],
        "bands": [
            (0, "minimal"),
            (5, "mild"),
            (10, "moderate"),
            (15, "moderately severe"),
            (20, "severe"),
        ],
        # Any answer above "not at all" on thoughts of death or self-harm.
        "safety": [("phq9_9", 1)],
    },
    {
        "code": "gad-7",
        "name": "GAD-7",
        "kind": "outcome",
        "licence_note": PFIZER,
        "reliable_change": Decimal(4),
        "items": [
            {"key": f"gad7_{n}", "wording": wording, "scale_max": 3, "scale_labels": FREQUENCY}
            for n, wording in enumerate(GAD7_ITEMS, start=1)
        ],
        "bands": [(0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")],
        "safety": [],
    },
    {
        "code": "session-feedback",
        "name": "Session feedback",
        "kind": "alliance",
        "licence_note": "Written for this project; free to use.",
        "reliable_change": None,
        "items": [
            *(
                {
                    "key": key,
                    "wording": wording,
                    "scale_max": 10,
                    "scale_labels": FEEDBACK_LABELS,
                }
                for key, wording in FEEDBACK_ITEMS
            ),
            {
                "key": "felt_off",
                "wording": "Did anything in today's session feel off, or that you disagreed with?",
                "kind": "yes_no",
                "scale_max": 1,
                "scale_labels": ["No", "Yes"],
                "scored": False,
            },
            {
                "key": "felt_off_text",
                "wording": "If you would like to, tell us what it was. (Optional)",
                "kind": "text",
                "scale_max": 1,
                "scored": False,
            },
        ],
        "bands": [],
        "safety": [],
    },
]


def ship(apps: Any, schema_editor: Any) -> None:
    Instrument = apps.get_model("alliance", "Instrument")
    InstrumentItem = apps.get_model("alliance", "InstrumentItem")
    SeverityBand = apps.get_model("alliance", "SeverityBand")
    SafetyRule = apps.get_model("alliance", "SafetyRule")
    for spec in INSTRUMENTS:
        instrument, _ = Instrument.objects.update_or_create(
            practice=None,
            code=spec["code"],
            version=1,
            defaults={
                "name": spec["name"],
                "kind": spec["kind"],
                "licence_note": spec["licence_note"],
                "reliable_change": spec["reliable_change"],
                "active": True,
            },
        )
        items = {}
        for position, item in enumerate(spec["items"], start=1):
            items[item["key"]], _ = InstrumentItem.objects.update_or_create(
                instrument=instrument,
                key=item["key"],
                defaults={
                    "position": position,
                    "wording": item["wording"],
                    "kind": item.get("kind", "scale"),
                    "scale_min": 0,
                    "scale_max": item["scale_max"],
                    "scale_labels": item.get("scale_labels", []),
                    "subscale": "",
                    "scored": item.get("scored", True),
                },
            )
        for lower, label in spec["bands"]:
            SeverityBand.objects.update_or_create(
                instrument=instrument, lower=lower, defaults={"label": label}
            )
        for key, threshold in spec["safety"]:
            SafetyRule.objects.get_or_create(
                instrument=instrument, item=items[key], threshold=threshold
            )


def unship(apps: Any, schema_editor: Any) -> None:
    Instrument = apps.get_model("alliance", "Instrument")
    # Items, bands and safety rules go with their instrument (CASCADE).
    Instrument.objects.filter(
        practice=None, code__in=[spec["code"] for spec in INSTRUMENTS], version=1
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("alliance", "0001_initial")]

    operations = [migrations.RunPython(ship, unship)]
