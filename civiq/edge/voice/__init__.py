"""The voice call, offline, in Vietnamese: numbers read aloud (numbers), the sentence and its clips (phrase),
PCM audio and espeak-ng (audio), the clip pack (clips), outputs (speaker) and the queue of announcements
(announcer). docs/technician.md, "Speakers" and "Recording kit", tells a technician how to use them."""
