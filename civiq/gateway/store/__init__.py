"""Gateway storage: the embedded SQLite series store and the spooled InfluxDB export."""

from civiq.gateway.store.series import MinutePoint, SeqState, SeriesStore, StoredEvent

__all__ = ["MinutePoint", "SeqState", "SeriesStore", "StoredEvent"]
