"""Authentication, where cassandra-driver users import it (``cassandra.auth``).

The classes live in the IO-free core (``cqlreactor.core.auth``); this module is the name users
import.  Out of scope (DataStax Enterprise only): ``DSEPlainTextAuthProvider``,
``DSEGSSAPIAuthProvider``, ``TransitionalModePlainTextAuthProvider`` and their authenticators;
see docs/migrating.md.
"""

from cqlreactor.core.auth import (AuthProvider, Authenticator, PlainTextAuthenticator,
                                  PlainTextAuthProvider, SaslAuthenticator, SaslAuthProvider)

__all__ = ["AuthProvider", "Authenticator", "PlainTextAuthProvider", "PlainTextAuthenticator",
           "SaslAuthProvider", "SaslAuthenticator"]
