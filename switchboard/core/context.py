"""What a running switchboard hands to every service: settings, database and event bus."""

from dataclasses import dataclass, field

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
        settings.var_path.mkdir(parents=True, exist_ok=True)
        return cls(settings, Database(settings.database_url, echo=settings.database.echo))
