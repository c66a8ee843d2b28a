"""What a running switchboard hands to every service: settings, database and event bus."""

from dataclasses import dataclass, field

from switchboard.core.audit.ledger import LEDGER, Ledger
from switchboard.core.config import Settings
from switchboard.core.db import Database
from switchboard.core.events import EventBus


@dataclass
class Context:
    settings: Settings
    db: Database
    bus: EventBus = field(default_factory=EventBus)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Context":
        settings.var_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings.var_path.chmod(0o700)  # also an older install's 0755 var/: nothing in it is for other accounts
        ledger = {LEDGER: Ledger.of(settings)}
        return cls(settings, Database(settings.database_url, echo=settings.database.echo, session_info=ledger))
