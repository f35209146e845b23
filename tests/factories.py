from __future__ import annotations

from datetime import datetime, timedelta

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
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
from scheduling.models import Appointment

PASSWORD = "correct-horse-battery-42"


class PracticeFactory(factory.django.DjangoModelFactory[Practice]):
    class Meta:
        model = Practice
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Practice {n}")
    slug = factory.Sequence(lambda n: f"practice-{n}")
    timezone = "Europe/Berlin"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified_email(obj: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


def enrol_totp(user: User) -> str:
    """Give a staff user a TOTP authenticator, as if they had enrolled; returns the secret."""
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def staff(practice: Practice, *roles: str, mfa: bool = True, **user_fields: object) -> User:
    user = UserFactory.create(**user_fields)
    membership = Membership.objects.create(
        user=user,
        practice=practice,
        is_admin="admin" in roles,
        is_clinician="clinician" in roles,
        is_supervisor="supervisor" in roles,
    )
    if membership.is_clinician:
        ClinicianProfile.objects.create(membership=membership)
    if mfa:
        enrol_totp(user)
    return user


class ClientFactory(factory.django.DjangoModelFactory[Client]):
    class Meta:
        model = Client

    practice = factory.SubFactory(PracticeFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"client{n}@example.org")
    phone = "+4930123456"
    status = Client.Status.ACTIVE


class EpisodeFactory(factory.django.DjangoModelFactory[Episode]):
    class Meta:
        model = Episode

    client = factory.SubFactory(ClientFactory)
    clinician = factory.SubFactory(UserFactory)
    stage = Episode.Stage.MIDDLE
    opened_on = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=30))


class PairingFactory(factory.django.DjangoModelFactory[SupervisionPairing]):
    class Meta:
        model = SupervisionPairing

    started_on = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=90))


def book(
    clinician: User,
    client: Client,
    starts_at: datetime,
    minutes: int = 50,
    **fields: object,
) -> Appointment:
    """An appointment straight into the database (no service, no notice), for test setup."""
    episode = Episode.objects.filter(client=client, clinician=clinician).first()
    if episode is None:
        episode = EpisodeFactory.create(client=client, clinician=clinician)
    return Appointment.objects.create(
        practice=client.practice,
        clinician=clinician,
        client=client,
        episode=episode,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        **fields,
    )
