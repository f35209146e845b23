from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from practice.models import Client, Episode, Membership, SupervisionPairing, User


def counts() -> tuple[int, ...]:
    return (
        User.objects.count(),
        Membership.objects.count(),
        Client.objects.count(),
        Episode.objects.count(),
        SupervisionPairing.objects.count(),
    )


def test_seed_demo_builds_a_practice_and_is_idempotent(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    call_command("seed_demo", stdout=StringIO())
    assert counts() == first

    members = Membership.objects.all()
    assert members.filter(is_admin=True).count() == 1
    assert members.filter(is_supervisor=True).count() == 2
    assert members.filter(is_clinician=True).count() == 6
    # 60 from the practice demo, and two alliance demo cases (demo.withdrawal@, demo.dropout@).
    assert Client.objects.exclude(email__startswith="demo.").count() == 60
    assert Client.objects.filter(email__startswith="demo.").count() == 2
    assert set(Episode.objects.values_list("stage", flat=True)) == {
        "intake", "beginning", "middle", "ending", "closed",
    }  # fmt: skip
    assert Client.objects.waitlisted().exists()
    # Every clinician has a current supervisor.
    assert SupervisionPairing.objects.current().count() == 6
    text = out.getvalue()
    for role in ("admin", "supervisor", "clinician", "client"):
        assert role in text
    assert Client.objects.get(email="client@demo.practice").user is not None
