import { describe, expect, it } from 'vitest'
import { businessDay, dateTime, money, percent, startOfShanghaiDay } from './format'

describe('money', () => {
  it('shows fen as yuan with thousands separators and two decimals', () => {
    expect(money(123450)).toBe('¥1,234.50')
    expect(money(5)).toBe('¥0.05')
    expect(money(0)).toBe('¥0.00')
    expect(money(-1999)).toBe('-¥19.99')
    expect(money(100000000)).toBe('¥1,000,000.00')
    expect(money(null)).toBe('—')
  })
})

describe('times', () => {
  it('shows UTC instants in Shanghai time', () => {
    expect(dateTime('2026-12-01T16:30:00Z')).toBe('2026-12-02 00:30')
    expect(dateTime('2026-12-01T16:30:05Z', true)).toBe('2026-12-02 00:30:05')
    expect(businessDay('2026-12-01T15:59:59Z')).toBe('2026-12-01')
    expect(businessDay('2026-12-01T16:00:00Z')).toBe('2026-12-02')
    expect(dateTime(null)).toBe('—')
    expect(dateTime('not a time')).toBe('—')
  })

  it('finds where a Shanghai day begins in UTC', () => {
    expect(startOfShanghaiDay('2026-12-02')).toBe('2026-12-01T16:00:00.000Z')
  })

  it('shows ratios as percentages', () => {
    expect(percent(0.9234)).toBe('92.3%')
    expect(percent(undefined)).toBe('—')
  })
})
