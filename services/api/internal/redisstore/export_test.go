package redisstore

// NewUserID lets the external tests make user ids of the shape the store
// checks, for users they create with a known id.
var NewUserID = newUserID
