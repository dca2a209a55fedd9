package httpapi_test

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestMain keeps gin quiet, as the command does: in its default debug mode
// every server the tests build would print its routes to stdout.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}
