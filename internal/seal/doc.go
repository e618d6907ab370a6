// Package seal is envelope encryption for the secrets sts must keep
// recoverable: signing private keys and third-party SCM tokens. A Keyring
// holds the master key (the key-encryption key) and the older ones still
// needed to open existing rows; every ciphertext names the key that sealed
// it and is bound to its row by AAD. It depends only on the standard library.
package seal
