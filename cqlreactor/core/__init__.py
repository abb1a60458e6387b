"""The sans-IO core: bytes in, events out. Nothing here touches a socket, a thread or a clock."""
