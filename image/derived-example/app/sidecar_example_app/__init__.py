"""The application's own code, as an application repository keeps it; image/derived-example copies it in as source."""
