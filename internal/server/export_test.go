package server

// RedactURLs exposes redactURLs to the tests of package server_test.
var RedactURLs = redactURLs
