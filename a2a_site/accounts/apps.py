from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "a2a_site.accounts"
    label = "accounts"
    verbose_name = "Accounts and workspaces"

    def ready(self) -> None:
        from a2a_site import checks  # noqa: F401  (registers the site's system checks)
