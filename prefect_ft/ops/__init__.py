"""Operations: health, metrics, logs, alerts and the emergency stop (issue 10)."""
