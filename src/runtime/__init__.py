"""Process set-up and the file system: device context, output probes, message lines."""
