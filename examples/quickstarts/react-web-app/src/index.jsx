import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';

function App() {
  const [clicks, setClicks] = useState(0);
  return (
    <main>
      <h1>Hello from React on Slipway</h1>
      <p>This page was rendered by React {React.version}, bundled by esbuild.</p>
      <button type="button" onClick={() => setClicks(clicks + 1)}>
        Clicked {clicks} {clicks === 1 ? 'time' : 'times'}
      </button>
    </main>
  );
}

createRoot(document.getElementById('root')).render(<App />);
