from typing import Any

from django.core.management.base import BaseCommand, CommandError

from agents.crypto import CredentialDecryptError, CredentialKeyError
from agents.services.credentials import credentials_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypts every stored credential with the first key of A2A_CREDENTIAL_KEYS. Rotate by "
        "putting a new key first, running this, then removing the old key."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = credentials_rotate()
        except (CredentialDecryptError, CredentialKeyError) as error:
            raise CommandError(f"{error} Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} credential(s)."))
