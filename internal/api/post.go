package api

import "net/http"

// postRoutes are the routes that take a JSON body (pathway checks and policy questions).
func (s *server) postRoutes() map[string]func(*http.Request, *params) (any, error) {
	return map[string]func(*http.Request, *params) (any, error){}
}
