"""The resource-management seed's code blocks (shared/seeds/003), one runnable file each."""
