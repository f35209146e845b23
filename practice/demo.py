"""The demo practice that `make run` loads. Idempotent: a second run changes nothing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.db import transaction
from django.utils import timezone

from practice.models import (
    Client,
    ClinicianProfile,
    Episode,
    Membership,
    Practice,
    SupervisionPairing,
    User,
)

DEMO_PASSWORD = "alliance-demo-2026"  # noqa: S105 - printed for the local demo only
DEMO_SLUG = "demo"

FIRST_NAMES = [
    "Ada", "Ben", "Chiara", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ines", "Jonas",
    "Kemal", "Lea", "Mateo", "Noor", "Olga", "Pavel", "Quinn", "Rosa", "Samir", "Tara",
]  # fmt: skip
LAST_NAMES = [
    "Albers", "Brandt", "Costa", "Demir", "Engel", "Fischer", "Gomez", "Hoang", "Ibrahim",
    "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nowak", "Okafor", "Petrov", "Rossi",
]  # fmt: skip
SPECIALTIES = ["anxiety", "depression", "trauma", "grief", "couples", "eating disorders"]
LANGUAGES = ["English", "German", "Turkish", "Spanish", "Arabic", "Polish"]


@dataclass(frozen=True)
class Staff:
    email: str
    first_name: str
    last_name: str
    roles: tuple[str, ...]


STAFF = [
    Staff("admin@demo.practice", "Maren", "Holt", ("admin",)),
    Staff("supervisor@demo.practice", "Ruth", "Adler", ("supervisor",)),
    Staff("supervisor2@demo.practice", "Tomas", "Berg", ("supervisor",)),
    Staff("clinician@demo.practice", "Nadia", "Keller", ("clinician",)),
    Staff("clinician2@demo.practice", "Omar", "Haddad", ("clinician",)),
    Staff("clinician3@demo.practice", "Paula", "Wirth", ("clinician",)),
    Staff("clinician4@demo.practice", "Jan", "Kraus", ("clinician",)),
    Staff("clinician5@demo.practice", "Selin", "Aydin", ("clinician",)),
    Staff("clinician6@demo.practice", "Luca", "Ferri", ("clinician",)),
]
CLIENT_COUNT = 60
PORTAL_CLIENT_EMAIL = "client@demo.practice"

LOGINS = [
    ("admin", "admin@demo.practice"),
    ("supervisor", "supervisor@demo.practice"),
    ("clinician", "clinician@demo.practice"),
    ("client", PORTAL_CLIENT_EMAIL),
]


def _user(email: str, first_name: str, last_name: str) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(
            email, DEMO_PASSWORD, first_name=first_name, last_name=last_name
        )
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


@transaction.atomic
def seed_demo() -> Practice:
    practice, _ = Practice.objects.get_or_create(
        slug=DEMO_SLUG, defaults={"name": "Lindenhof Group Practice", "timezone": "Europe/Berlin"}
    )
    rng = random.Random(20261121)  # noqa: S311 - demo data, not security
    clinicians: list[User] = []
    supervisors: list[User] = []
    for index, staff in enumerate(STAFF):
        user = _user(staff.email, staff.first_name, staff.last_name)
        membership, _ = Membership.objects.get_or_create(
            user=user,
            defaults={
                "practice": practice,
                "is_admin": "admin" in staff.roles,
                "is_clinician": "clinician" in staff.roles,
                "is_supervisor": "supervisor" in staff.roles,
            },
        )
        if membership.is_clinician:
            ClinicianProfile.objects.get_or_create(
                membership=membership,
                defaults={
                    "languages": ["English", LANGUAGES[index % len(LANGUAGES)]],
                    "specialties": rng.sample(SPECIALTIES, 2),
                    "caseload_capacity": 12,
                },
            )
            clinicians.append(user)
        if membership.is_supervisor:
            supervisors.append(user)

    today = timezone.localdate()
    started = today - timedelta(days=365)
    # Ruth supervises the first three clinicians, Tomas the other three.
    pairs = [(supervisors[0], c) for c in clinicians[:3]]
    pairs += [(supervisors[1], c) for c in clinicians[3:]]
    for supervisor, supervisee in pairs:
        if not SupervisionPairing.objects.filter(supervisee=supervisee).exists():
            SupervisionPairing.objects.create(
                practice=practice, supervisor=supervisor, supervisee=supervisee, started_on=started
            )

    stages = [Episode.Stage.INTAKE, Episode.Stage.BEGINNING, Episode.Stage.MIDDLE]
    stages += [Episode.Stage.MIDDLE, Episode.Stage.ENDING]
    for number in range(CLIENT_COUNT):
        first = FIRST_NAMES[number % len(FIRST_NAMES)]
        last = LAST_NAMES[(number * 7) % len(LAST_NAMES)]
        email = PORTAL_CLIENT_EMAIL if number == 0 else f"client{number:02d}@example.org"
        client, created = Client.objects.get_or_create(
            practice=practice,
            email=email,
            defaults={
                "first_name": first,
                "last_name": last,
                "phone": f"+49301234{number:04d}",
                "preferred_language": rng.choice(LANGUAGES),
                "needs": rng.sample(SPECIALTIES, 1),
            },
        )
        if not created:
            continue
        # Most clients are in care; a few wait, a few have ended.
        clinician = clinicians[number % len(clinicians)]
        if number % 12 == 11:
            continue  # stays on the waitlist
        opened = today - timedelta(days=rng.randint(14, 300))
        if number % 10 == 9:
            episode = Episode.objects.create(client=client, clinician=clinician, opened_on=opened)
            episode.close(reason=rng.choice(["completed", "dropped_out"]), on=today)
            client.status = Client.Status.DISCHARGED
        else:
            Episode.objects.create(
                client=client,
                clinician=clinician,
                opened_on=opened,
                stage=stages[number % len(stages)],
            )
            client.status = Client.Status.ACTIVE
        client.save(update_fields=["status"])
        if email == PORTAL_CLIENT_EMAIL:
            client.user = _user(email, first, last)
            client.save(update_fields=["user"])
    return practice
