package walvfs

// SetCommitRule exports setCommitRule to the tests.
var SetCommitRule = setCommitRule
