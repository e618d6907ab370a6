package sqlstore

// MigrationLockKey is the advisory lock key of a schema's migrations, for
// tests that play another replica.
const MigrationLockKey = migrationLockKey

// BootstrapLockKey is WithBootstrapLock's advisory lock key.
const BootstrapLockKey = bootstrapLockKey
