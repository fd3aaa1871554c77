package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/loanflow/loanflow/contracts/partnerapi"
)

// Code classifies an error for the answer Yandex gets.
type Code int

// Error codes, each mapped to one HTTP status in status().
const (
	CodeInternal      Code = iota // the bank failed: 500, logged, nothing leaked
	CodeInvalid                   // the body breaks the contract: 400 with properties
	CodeForbidden                 // no or wrong bearer token: 403
	CodeNotFound                  // a poll for a search_id never received: 404
	CodeTooLarge                  // the body is over the size limit: 413
	CodeFailed                    // the application could not be processed: 500 with a message
	CodeNotAcceptable             // a method or path the API does not have: 405
	CodeTooMany                   // the token is over its request rate: 429 with Retry-After
)

// Error is an answer-worthy error: Message is safe to show to Yandex.
type Error struct {
	Code       Code
	SearchID   string
	Message    string
	Properties []string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string
}

func (e *Error) Error() string { return e.Message }

// Messages of the answers that have a fixed text.
const (
	msgInternal   = "Внутренняя ошибка банка, повторите запрос позже"
	msgFailed     = "Банк не смог обработать заявку"
	msgNotFound   = "Заявок с таким search_id не найдено"
	msgNoToken    = "Требуется заголовок Authorization: Bearer <токен>"
	msgBadToken   = "Неверный токен авторизации"
	msgConflict   = "Поле search_id уже использовано для заявки с другими параметрами"
	msgMethod     = "Метод не поддерживается"
	msgNoRoute    = "Неизвестный адрес"
	msgTooLarge   = "Тело запроса больше допустимого размера"
	msgTooMany    = "Слишком много запросов с этим токеном, повторите позже"
	msgNotAllowed = "Запросы с этого адреса не принимаются"
	msgOverloaded = "Банк перегружен, повторите запрос позже"
	retryAfterIE  = "1"
)

func status(c Code) int {
	switch c {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeNotAcceptable:
		return http.StatusMethodNotAllowed
	case CodeTooMany:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers err: an *Error with its code and message, anything else as an internal
// error that is logged with the correlation id and never shown.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, searchID string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "internal error", "search_id", searchID, "correlation_id", correlationID(r.Context()), "err", err)
		e = &Error{Code: CodeInternal, SearchID: searchID, Message: msgInternal}
		w.Header().Set("Retry-After", retryAfterIE)
	}
	if e.SearchID == "" {
		e.SearchID = searchID
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	if e.Code == CodeFailed {
		log.WarnContext(r.Context(), "answered failed application", "search_id", e.SearchID, "correlation_id", correlationID(r.Context()))
	}
	writeJSON(w, status(e.Code), partnerapi.ErrorAnswer{SearchID: e.SearchID, Message: e.Message, Properties: e.Properties})
}

// writeJSON writes v as strict JSON. HTML escaping is off: the answers are read by Yandex, not
// embedded in pages, and proposal links should read as the URLs they are.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"search_id":"","message":"` + msgInternal + `"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
