"""Music as data: Standard MIDI Files, notes, piano rolls, meter, pictures and audio of them; no TensorFlow."""
