package election

import (
	"strconv"
	"unicode/utf8"
)

// AppendVoterJSON appends v as JSON to dst, byte for byte what
// json.Marshal(v) gives, without reflection or allocation: register encodes
// every voter of the roll with it.
func AppendVoterJSON(dst []byte, v *Voter) []byte {
	dst = append(dst, `{"voter_id":`...)
	dst = appendJSONString(dst, v.VoterID)
	dst = append(dst, `,"voter_name":`...)
	dst = appendJSONString(dst, v.VoterName)
	dst = append(dst, `,"date_of_birth":`...)
	dst = appendJSONString(dst, v.DateOfBirth)
	dst = append(dst, `,"gender":`...)
	dst = appendJSONString(dst, v.Gender)
	dst = append(dst, `,"nationality":`...)
	dst = appendJSONString(dst, v.Nationality)
	dst = append(dst, `,"registration_number":`...)
	dst = appendJSONString(dst, v.RegistrationNumber)
	dst = append(dst, `,"address":{"street":`...)
	dst = appendJSONString(dst, v.Address.Street)
	dst = append(dst, `,"city":`...)
	dst = appendJSONString(dst, v.Address.City)
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, v.Address.State)
	dst = append(dst, `,"country":`...)
	dst = appendJSONString(dst, v.Address.Country)
	dst = append(dst, `,"postcode":`...)
	dst = appendJSONString(dst, v.Address.Postcode)
	dst = append(dst, `},"email":`...)
	dst = appendJSONString(dst, v.Email)
	dst = append(dst, `,"phone_number":`...)
	dst = appendJSONString(dst, v.PhoneNumber)
	dst = append(dst, `,"cell_number":`...)
	dst = appendJSONString(dst, v.CellNumber)
	dst = append(dst, `,"picture":`...)
	dst = appendJSONString(dst, v.Picture)
	dst = append(dst, `,"registered_age":`...)
	dst = strconv.AppendInt(dst, int64(v.RegisteredAge), 10)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string: quoted, with
// control characters, <, > and & escaped, invalid UTF-8 replaced by U+FFFD
// and U+2028/U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
