"""Development parts, never loaded by a production edge or gateway: ``civiq demo`` (:mod:`.demo`, its centers
and people), the broker runners (:mod:`.broker`: Mosquitto, the embedded amqtt broker) and the
VictoriaMetrics runner (:mod:`.tsdb`). Tests and bench use them; ``pip install civiq[demo]`` brings what they
need."""
