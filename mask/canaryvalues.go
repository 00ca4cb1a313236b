package mask

// CanaryValues maps the columns the rules fake as contact data in table
// (named as the rules name it) to the canary's values: the columns a
// canary row takes from the canary rather than from the row it copies.
func (r *Rules) CanaryValues(table string, c Canary) map[string]string {
	out := map[string]string{}
	for col, rule := range r.Tables[table] {
		switch {
		case rule.Action == KeepDomain, rule.Kind == Email:
			out[col] = c.Email
		case rule.Kind == Phone:
			out[col] = c.Phone
		case rule.Kind == Name:
			out[col] = c.Name()
		case rule.Kind == FirstName:
			out[col] = c.First
		case rule.Kind == LastName:
			out[col] = c.Last
		case rule.Kind == Address:
			out[col] = c.Address
		}
	}
	return out
}
