package generate

// ActiveSequences is the number of sequences being generated now.
func (m *Model) ActiveSequences() int { return len(m.slots) }

// MaxSequences is the most sequences generated at once.
func (m *Model) MaxSequences() int { return cap(m.slots) }
